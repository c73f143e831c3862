"""Durable execution of runs (DBOS) and the process-wide runtime they use."""
