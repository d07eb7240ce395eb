"""The portal's session cookie, its CSRF tokens and the one check of where a redirect may go.

The session is aiohttp_session's encrypted cookie, but encrypted with the ``MultiFernet`` of
``WEARABLES_SESSION_KEY`` (``runtime.keys.session_fernet``), so a cookie made under the
previous key still opens after a rotation. The cookie is ``HttpOnly`` (no script reads it),
``Secure`` behind https, and ``SameSite=Lax``: not Strict, because the vendor's redirect back to
``/link/callback`` is a cross-site top-level GET that must carry the cookie holding the pending
OAuth state; Lax still keeps it off cross-site POSTs, and every POST also needs the CSRF token.

Every form that changes something carries a hidden field ``csrf`` holding the session's
token; :func:`csrf_middleware` refuses any POST whose field does not match (403).
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp_session import AbstractStorage, Session, get_session
from cryptography.fernet import InvalidToken, MultiFernet

from runtime.keys import session_fernet
from runtime.settings import Settings

__all__ = ["CSRF_FIELD", "SESSION_COOKIE", "CsrfRejected", "MultiFernetCookieStorage", "csrf_middleware",
           "csrf_token", "is_local_path", "safe_next", "session_storage"]

logger = logging.getLogger(__name__)

SESSION_COOKIE = "wearables_session"
CSRF_FIELD = "csrf"
_CSRF_KEY = "csrf"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class MultiFernetCookieStorage(AbstractStorage):
    """aiohttp_session's ``EncryptedCookieStorage`` with a ``MultiFernet``: the first key encrypts,
    every key decrypts. (``EncryptedCookieStorage`` takes a single ``Fernet``.)"""

    def __init__(self, cipher: MultiFernet, *, cookie_name: str, max_age: int, secure: bool,
                 samesite: str = "Lax") -> None:
        super().__init__(cookie_name=cookie_name, max_age=max_age, path="/", secure=secure, httponly=True,
                         samesite=samesite, encoder=json.dumps, decoder=json.loads)
        self._cipher = cipher

    async def load_session(self, request: web.Request) -> Session:
        cookie = self.load_cookie(request)
        if cookie is None:
            return Session(None, data=None, new=True, max_age=self.max_age)
        try:
            # ttl: a cookie older than max_age is refused even if a browser kept it
            data = self._decoder(self._cipher.decrypt(cookie.encode("utf-8"), ttl=self.max_age).decode("utf-8"))
        except (InvalidToken, UnicodeError, ValueError):
            logger.info("a session cookie did not decrypt (expired, tampered or an old key): a new session")
            return Session(None, data=None, new=True, max_age=self.max_age)
        return Session(None, data=data, new=False, max_age=self.max_age)

    async def save_session(self, request: web.Request, response: web.StreamResponse, session: Session) -> None:
        if session.empty:
            self.save_cookie(response, "", max_age=session.max_age)
            return
        payload = self._encoder(self._get_session_data(session)).encode("utf-8")
        self.save_cookie(response, self._cipher.encrypt(payload).decode("utf-8"), max_age=session.max_age)


def session_storage(settings: Settings) -> MultiFernetCookieStorage:
    """The portal's cookie storage; raises ConfigurationError outside the demo without a session key."""
    return MultiFernetCookieStorage(session_fernet(settings), cookie_name=SESSION_COOKIE,
                                    max_age=int(settings.portal.session_max_age),
                                    secure=settings.portal.secure_cookies)


def csrf_token(session: Session) -> str:
    """The session's CSRF token, made on first use."""
    token = session.get(_CSRF_KEY)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session[_CSRF_KEY] = token
    return token


class CsrfRejected(web.HTTPForbidden):
    """A POST without the session's CSRF token (the error pages explain it to the participant)."""


@web.middleware
async def csrf_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every POST must carry the session's token in the form field ``csrf``; else 403."""
    if request.method == "POST":
        session = await get_session(request)
        expected = session.get(_CSRF_KEY)
        form = await request.post()
        given = form.get(CSRF_FIELD)
        if not isinstance(expected, str) or not expected or not isinstance(given, str) \
                or not hmac.compare_digest(given.encode(), expected.encode()):
            raise CsrfRejected()
    return await handler(request)


def is_local_path(path: str) -> bool:
    """Whether ``path`` stays on this site: ``/...``, never ``//host``, a backslash or a scheme."""
    if not path.startswith("/") or path.startswith("//") or "\\" in path:
        return False
    if any(ord(character) < 0x20 or ord(character) == 0x7F for character in path):
        return False  # browsers drop tabs and newlines, which would turn "/\t/evil" into "//evil"
    parts = urlsplit(path)
    return not parts.scheme and not parts.netloc


def safe_next(path: str | None) -> str:
    """``path`` if it is local (:func:`is_local_path`), else ``/me``: a redirect never leaves the site."""
    return path if path is not None and is_local_path(path) else "/me"
