"""Install flower_actors; the metadata lives in setup.cfg."""

from setuptools import setup

setup()
