"""Docker's grammar for image names and tags, defined once.

bocker.ids (NAME[:TAG] as a user types it) and bocker.image.reference
(a full registry reference) both match against these patterns, so the two
can never disagree on what a name is.  Only `re`: this module is on the
start path (ids imports it) and must stay cheap to import.
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

COMPONENT_RE = re.compile(COMPONENT)
DOMAIN_RE = re.compile(DOMAIN)
# [DOMAIN/]COMPONENT[/COMPONENT...], the name part of NAME[:TAG].
NAME_RE = re.compile(rf"(?:{DOMAIN}/)?{COMPONENT}(?:/{COMPONENT})*")
TAG_RE = re.compile(r"[\w][\w.-]{0,127}")


def is_component(text):
    """True for one repository path component ('busybox', 'my-app')."""
    return bool(COMPONENT_RE.fullmatch(text))


def is_domain(text):
    """True for a registry host[:port] ('localhost:5000', '[::1]:5000')."""
    return bool(DOMAIN_RE.fullmatch(text))


def is_name(text):
    """True for a repository name, optionally behind a registry host."""
    return bool(NAME_RE.fullmatch(text))


def is_tag(text):
    """True for a tag: a word character, then up to 127 of [\\w.-]."""
    return bool(TAG_RE.fullmatch(text))
