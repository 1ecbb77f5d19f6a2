"""Not loaded in user servers: on this directory (first on their PYTHONPATH) it refuses to import.

jsonschema imports the optional ``rfc3987_syntax`` package when it is installed, and that
package compiles a grammar at import: about 2 seconds of CPU at every user-server start, for
an IRI format check no Enclave schema uses. jsonschema goes on without it.
"""

raise ImportError("rfc3987_syntax is left out of user servers (hub/user_server/startup)")
