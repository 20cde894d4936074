"""Renderers: typed results → rich output for the operator.  Nothing here reads a host.

    status.py smoke.py monitor.py diagnose.py   one per phase
"""
