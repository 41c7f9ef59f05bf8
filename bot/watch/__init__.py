"""Watchers: channels subscribe to an update batch and are told of its transitions."""
