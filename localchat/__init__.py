"""otajob's local chat surface: the real app, with nothing set up, in a browser page.

With no Slack settings, ``make run`` starts the app with this surface on 127.0.0.1:$PORT
(localchat/run.py): the fake Slack from ``fakes/`` serves the Web API the app calls, the
page (localchat/static/) shows the conversation, and what the person does there is sent to
the app as Slack sends it (localchat/surface.py). See the README, "Try it locally".
"""

# Only the check here: in Slack mode nothing of the surface (or of the fakes) is imported.
from localchat.mode import wanted

__all__ = ["wanted"]
