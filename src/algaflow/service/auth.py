"""Access tokens: who may write which unit's data and who may read.

A token is 256 random bits (``secrets.token_urlsafe(32)``) with a prefix naming its kind; the store keeps only
its SHA-256 (a fast hash is right for a random secret of this size, unlike a password: there is nothing to
guess), with what it grants:

    device token  {"kind": "device", "unit_id": U}   writes frames and events of unit U only, reads nothing
    user token    {"kind": "user", "role": R}        R = "reader" reads, "operator" also posts events,
                                                     "admin" also registers units and issues tokens

A token may expire: ``expires_us`` (µs since the epoch) in its record; from then on it authenticates nothing.
A device token also carries the Mosquitto password hash of the same secret (PBKDF2-SHA512, Mosquitto's
``$7$`` format), so ``algaflow mqtt-config`` can write a password file without ever storing the token.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass

from algaflow.store import Store

ROLES = ("reader", "operator", "admin")
DEVICE_PREFIX, USER_PREFIX = "afd_", "afu_"
MOSQUITTO_ITERATIONS = 101  # mosquitto_passwd's default for $7$
MOSQUITTO_SALT_BYTES = 12
MAX_LIFETIME_S = 100 * 365 * 86400  # the longest a token may be issued for (expires_in_s)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request comes from."""

    kind: str  # "device" | "user"
    unit_id: str | None = None
    role: str | None = None
    label: str = ""

    def may_write(self, unit_id: str) -> bool:
        if self.kind == "device":
            return self.unit_id == unit_id
        return self.role == "admin"

    @property
    def may_read(self) -> bool:
        return self.kind == "user"

    @property
    def may_post_events(self) -> bool:
        return self.kind == "user" and self.role in ("operator", "admin")

    @property
    def is_admin(self) -> bool:
        return self.kind == "user" and self.role == "admin"


def token_hash(token: str) -> str:
    """SHA-256 of the token, hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def mosquitto_password_hash(password: str, salt: bytes | None = None, iterations: int = MOSQUITTO_ITERATIONS) -> str:
    """Mosquitto's ``$7$`` password-file entry: PBKDF2-HMAC-SHA512 over the password with a random salt,
    ``$7$<iterations>$<base64 salt>$<base64 key>``."""
    salt = secrets.token_bytes(MOSQUITTO_SALT_BYTES) if salt is None else salt
    key = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(key).decode()}"


def _expiry(expires_in_s: float | None) -> dict:
    if expires_in_s is None:
        return {}
    if not 0 < expires_in_s <= MAX_LIFETIME_S:
        raise ValueError(f"a token's lifetime must lie in (0, 100 years] (got {expires_in_s} s)")
    return {"expires_us": int((time.time() + expires_in_s) * 1e6)}


def issue_device_token(store: Store, unit_id: str, label: str = "", expires_in_s: float | None = None) -> str:
    """A new token that writes only ``unit_id``'s data (the unit must be registered); it expires after
    ``expires_in_s`` seconds if given."""
    if store.unit(unit_id) is None:
        raise KeyError(f"unit {unit_id!r} is not registered; register it first")
    token = DEVICE_PREFIX + secrets.token_urlsafe(32)
    store.save_token(token_hash(token), {"kind": "device", "unit_id": unit_id, "label": label,
                                         "mosquitto_hash": mosquitto_password_hash(token),
                                         **_expiry(expires_in_s)})  # fmt: skip
    return token


def issue_user_token(store: Store, role: str, label: str = "", expires_in_s: float | None = None) -> str:
    """A new user token with ``role`` (one of ``ROLES``); it expires after ``expires_in_s`` seconds if given."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    token = USER_PREFIX + secrets.token_urlsafe(32)
    store.save_token(token_hash(token), {"kind": "user", "role": role, "label": label, **_expiry(expires_in_s)})
    return token


def expired(record: dict, now_us: int | None = None) -> bool:
    """Whether a token record has passed its ``expires_us``."""
    expires = record.get("expires_us")
    return expires is not None and (now_us if now_us is not None else time.time() * 1e6) >= expires


def authenticate(store: Store, token: str | None) -> Principal | None:
    """The principal of a presented token, or None (no token, unknown, revoked or expired)."""
    if not token or len(token) > 200:
        return None
    record = store.token_record(token_hash(token))
    if record is None or expired(record):
        return None
    return Principal(kind=record["kind"], unit_id=record.get("unit_id"), role=record.get("role"),
                     label=record.get("label", ""))  # fmt: skip

