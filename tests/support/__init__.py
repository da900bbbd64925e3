"""What the tests share besides fixtures (those are in the conftest.py files).

audio      WAVs written byte by byte, MP3s read back with ffprobe
problems   assertions about RFC 9457 problem responses
functions  a function's app in the test process, on the test database or on none
stacks     the local stack, one function, or the gateway alone, running for a test
"""
