"""Benchmarks side by side with celery-redbeat 2.4.2: python -m bench [--quick] [--only SCENARIO]."""
