"""The data layer: each function is one database transaction, blocking (async code calls it with
``asyncio.to_thread``). It knows the tables and the rules that live in a single write (a prompt's
start with its session's status, a seq allocated in the writing transaction); it never awaits,
never talks to a sandbox and never publishes. ``inspect_app.control``'s services coordinate these
steps; the pure rules they share (``transitions``, ``event_data``) sit beside them.
"""
