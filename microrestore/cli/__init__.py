"""The ``microrestore`` command line (typer). torch is imported only inside commands that need it."""
