"""The reconcile core: read Redis state, plan the diff, render it, apply the writes."""
