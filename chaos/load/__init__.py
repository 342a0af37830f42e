"""Trading load: Locust users (``locustfile``) run by ``driver.LoadDriver`` in a worker
process (``python -m chaos.load.worker``); nothing here imports locust in the caller."""
