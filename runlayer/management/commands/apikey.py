"""Manage API keys from the shell.

python manage.py apikey create --user alice [--name laptop]   # prints only the key
python manage.py apikey list [--user alice]
python manage.py apikey revoke <key id or prefix>
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from runlayer.models import ApiKey
from runlayer.services import api_key_create, api_key_revoke


class Command(BaseCommand):
    help = "Create, list and revoke API keys. `create` prints only the new key, for scripts."

    def add_arguments(self, parser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create a key and print it (only) on stdout")
        create.add_argument("--user", required=True, help="username of the key's owner")
        create.add_argument("--name", default="cli", help="a label for the key")
        listing = sub.add_parser("list", help="list keys")
        listing.add_argument("--user", help="only this user's keys")
        revoke = sub.add_parser("revoke", help="revoke a key")
        revoke.add_argument("key", help="the key's id or its prefix (as shown by `list`)")

    def handle(self, *args, **options) -> None:
        action = options["action"]
        if action == "create":
            self._create(options["user"], options["name"])
        elif action == "list":
            self._list(options.get("user"))
        else:
            self._revoke(options["key"])

    def _user(self, username: str):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user named {username!r}")
        return user

    def _create(self, username: str, name: str) -> None:
        try:
            new = api_key_create(user=self._user(username), name=name)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        self.stdout.write(new.key)

    def _list(self, username: str | None) -> None:
        qs = ApiKey.objects.select_related("user").order_by("user__username", "-created_at")
        if username:
            qs = qs.filter(user=self._user(username))
        for key in qs:
            state = "active" if key.is_active else ("revoked" if key.revoked_at else "expired")
            last = key.last_used_at.isoformat(timespec="seconds") if key.last_used_at else "never"
            self.stdout.write(
                f"{key.id}  {key.prefix}…  {key.user.get_username():<20} {state:<8} last used {last}  {key.name}"
            )

    def _revoke(self, ref: str) -> None:
        q = Q(prefix=ref)
        try:
            import uuid

            q |= Q(id=uuid.UUID(ref))
        except ValueError:
            pass
        matches = list(ApiKey.objects.filter(q).select_related("user")[:2])
        if not matches:
            raise CommandError(f"no API key with id or prefix {ref!r}")
        if len(matches) > 1:
            raise CommandError(f"{ref!r} matches more than one key: use the id")
        api_key_revoke(api_key=matches[0], actor=None)
        self.stdout.write(f"revoked {matches[0].prefix}… ({matches[0].name})")
