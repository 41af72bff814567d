"""What the Python bench scripts share (they run as `python benches/NAME.py`, so this module
is on their path)."""
import socket


def free_port():
    """A free TCP port on 127.0.0.1 (for a server started next)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p
