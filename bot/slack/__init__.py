"""Slack surfaces. Each module has one ``register(app, deps)``; bot.slack.surfaces wires them."""
