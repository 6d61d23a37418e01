"""The ``lstmae`` command line (`app`; the fleet's verbs in `fleet`, the demo job in `demo`)."""
