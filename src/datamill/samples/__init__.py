"""Sample datasets that ship with datamill, for the demo and the docs."""
