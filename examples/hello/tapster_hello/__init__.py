"""tapster-hello: a third-party tapster plugin (the plugin itself is :mod:`tapster_hello.plugin`)."""

__version__ = "1.0.0"
