"""A probe app: its ServerApp records and checks what each node's ClientApp answers."""
