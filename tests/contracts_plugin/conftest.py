pytest_plugins = ["contracts.pytest_plugin"]
