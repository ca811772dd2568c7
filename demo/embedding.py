"""A LeadClient inside your own Thespian actor system."""

from thespian.actors import ActorSystem

from flower_actors import (
    Driver,
    EmbeddedServer,
    LeadClient,
    NodeConfig,
    StartLeadClient,
    TaskIns,
    free_port,
    kill_session,
    secure_thespian,
)

secure_thespian()  # before the system starts: loopback only, authenticated frames
asys = ActorSystem("multiprocTCPBase", {"Admin Port": free_port()}, transientUnique=True)
started = None
try:
    server = asys.createActor(EmbeddedServer)  # or your own server adapter
    lead = asys.createActor(LeadClient)
    config = NodeConfig(node_id=0, app="flower_actors.examples:EchoClient", long_poll=True)
    started = asys.ask(lead, StartLeadClient(config, server), 10)  # one message configures it
    driver = Driver(asys, server)
    results = driver.run([TaskIns.create(w, f"hello {w}") for w in range(3)], timeout=30)
    print([r.content for r in results])
finally:
    asys.shutdown()
    if started is not None:
        kill_session(started.session_id)  # whatever shutdown() left behind
