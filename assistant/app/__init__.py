"""The Chainlit chat app: accounts, history, rendering of cited answers, exports and the launcher.

Nothing here runs at import time; ``policylab serve`` (``launcher.serve``) prepares the app
directory and starts ``chainlit run`` on ``chainlit_app.py``.
"""
