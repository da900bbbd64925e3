"""The compose topology as local processes: what `make run` starts, and what the tests and the benchmark start.

topology    the functions, their ports, and the command line from their Dockerfile
processes   free ports, waiting for one to answer, starting nginx on a config
postgres    a server to use (the machine's, or a cluster under .data/), databases on it, migrations
gateway     nginx's config, rendered from the template compose's image renders
supervisor  `make run`: everything above under honcho, in the foreground
background  the same in a child process, for the tests and the benchmark, with its logs read back
seed        users and records put straight into the database
"""
