"""Docker's grammar for image names and tags, defined once.

bocker.ids (NAME[:TAG] as a user types it) and bocker.image.reference
(a full registry reference) both match against these patterns, so the two
can never disagree on what a name is.  Only `re`, and nothing compiled at
import: this module is on the start path (ids imports it).
"""
import re

# A path component of a repository: lowercase alphanumerics joined by
# one '.', one or two '_', or any number of '-'.
COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
# A registry host: DNS labels (no leading or trailing '-') or a bracketed
# IPv6 address, with an optional port.
DOMAIN = (r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
          r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
          r"|\[[0-9a-fA-F:]+\])(?::[0-9]+)?")

# [DOMAIN/]COMPONENT[/COMPONENT...], the name part of NAME[:TAG].
NAME = rf"(?:{DOMAIN}/)?{COMPONENT}(?:/{COMPONENT})*"
TAG = r"[\w][\w.-]{0,127}"
# Patterns, not compiled objects: re compiles each on first use and caches
# it, so a start (which never parses a name) pays nothing for them.


def is_component(text):
    """True for one repository path component ('busybox', 'my-app')."""
    return bool(re.fullmatch(COMPONENT, text))


def is_domain(text):
    """True for a registry host[:port] ('localhost:5000', '[::1]:5000')."""
    return bool(re.fullmatch(DOMAIN, text))


def is_name(text):
    """True for a repository name, optionally behind a registry host."""
    return bool(re.fullmatch(NAME, text))


def is_tag(text):
    """True for a tag: a word character, then up to 127 of [\\w.-]."""
    return bool(re.fullmatch(TAG, text))
