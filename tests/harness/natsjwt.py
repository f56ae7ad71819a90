"""Decentralised NATS auth for tests, without `nsc`: an operator, an account and a user as
nkeys, their JWTs, the server configuration that trusts them and the user's `.creds` file.

JWTs are `base64url(header).base64url(claims).base64url(ed25519 signature)`, signed by the
issuer's nkey; the account is preloaded into the server's in-memory resolver with JetStream
enabled. Only what nats-server checks is filled in.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nkeys

UNLIMITED = -1


class Identity:
    """An nkey pair of one kind (operator, account or user)."""

    def __init__(self, prefix: int) -> None:
        self.seed = nkeys.encode_seed(os.urandom(32), prefix)
        self._pair = nkeys.from_seed(bytearray(self.seed))
        self.public = self._pair.public_key.decode()

    def sign_jwt(self, subject: str, name: str, nats: dict[str, Any]) -> str:
        claims: dict[str, Any] = {
            "iat": int(time.time()),
            "iss": self.public,
            "name": name,
            "sub": subject,
            "nats": {**nats, "version": 2},
        }
        digest = hashlib.sha256(json.dumps(claims, sort_keys=True).encode()).digest()
        claims["jti"] = base64.b32encode(digest).decode().rstrip("=")
        header = _b64({"typ": "JWT", "alg": "ed25519-nkey"})
        body = f"{header}.{_b64(claims)}"
        signature = self._pair.sign(body.encode())
        return f"{body}.{base64.urlsafe_b64encode(signature).decode().rstrip('=')}"


def _b64(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@dataclass(frozen=True)
class Decentralised:
    server_config: str
    creds_path: Path
    stranger_creds_path: Path  # a user signed by an account the server does not know


def make_decentralised_auth(directory: Path) -> Decentralised:
    directory.mkdir(parents=True, exist_ok=True)
    operator = Identity(nkeys.PREFIX_BYTE_OPERATOR)
    account, system = Identity(nkeys.PREFIX_BYTE_ACCOUNT), Identity(nkeys.PREFIX_BYTE_ACCOUNT)
    operator_claims = {"type": "operator", "system_account": system.public}
    operator_jwt = operator.sign_jwt(operator.public, "test-operator", operator_claims)
    account_jwt = operator.sign_jwt(account.public, "bridge-account", _account_claims())
    system_jwt = operator.sign_jwt(system.public, "SYS", {"type": "account"})
    config = (  # JetStream needs a system account in operator mode
        f"operator: {operator_jwt}\n"
        f"system_account: {system.public}\n"
        "resolver: MEMORY\n"
        f"resolver_preload: {{\n  {account.public}: {account_jwt}\n"
        f"  {system.public}: {system_jwt}\n}}\n"
    )
    stranger = Identity(nkeys.PREFIX_BYTE_ACCOUNT)
    return Decentralised(
        server_config=config,
        creds_path=_user_creds(account, directory / "bridge.creds"),
        stranger_creds_path=_user_creds(stranger, directory / "stranger.creds"),
    )


def _account_claims() -> dict[str, Any]:
    names = ("subs", "data", "payload", "imports", "exports", "conn", "leaf")
    limits: dict[str, Any] = dict.fromkeys(names, UNLIMITED)
    jetstream = {"mem_storage": UNLIMITED, "disk_storage": UNLIMITED}
    jetstream |= {"streams": UNLIMITED, "consumer": UNLIMITED}
    return {"type": "account", "limits": {**limits, **jetstream, "wildcards": True}}


def _user_creds(account: Identity, path: Path) -> Path:
    user = Identity(nkeys.PREFIX_BYTE_USER)
    claims = {"type": "user", "pub": {}, "sub": {}, "subs": UNLIMITED, "data": UNLIMITED}
    claims["payload"] = UNLIMITED
    jwt = account.sign_jwt(user.public, "bridge", claims)
    path.write_text(
        "-----BEGIN NATS USER JWT-----\n"
        f"{jwt}\n"
        "------END NATS USER JWT------\n\n"
        "-----BEGIN USER NKEY SEED-----\n"
        f"{user.seed.decode()}\n"
        "------END USER NKEY SEED------\n",
        encoding="utf-8",
    )
    return path
