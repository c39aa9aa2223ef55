from __future__ import annotations

import json
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from .models import Connector
from .services import EDITABLE_FIELDS
from .validation import validate_connector_config

SECRET_MASK = "********"


class ConnectorAdminForm(forms.ModelForm):
    """Header values are write-only: the form shows names with masked values; a masked value keeps the secret."""

    headers_input = forms.CharField(
        label="Headers",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        help_text=(
            'JSON object, e.g. {"Authorization": "Bearer …"}. Values are encrypted at rest and shown masked; '
            f"leave {SECRET_MASK} to keep a stored value."
        ),
    )

    class Meta:
        model = Connector
        fields = [f for f in EDITABLE_FIELDS if f != "headers"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        stored = (self.instance.headers or {}) if self.instance.pk else {}
        self.fields["headers_input"].initial = json.dumps({k: SECRET_MASK for k in stored}) if stored else ""

    def clean_headers_input(self) -> dict[str, str]:
        raw = (self.cleaned_data.get("headers_input") or "").strip()
        if not raw:
            return {}
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"not valid JSON: {exc.msg}") from None
        if not isinstance(value, dict):
            raise ValidationError("must be a JSON object")
        stored = (self.instance.headers or {}) if self.instance.pk else {}
        return {k: (stored.get(k, "") if v == SECRET_MASK else v) for k, v in value.items()}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        config = {f: cleaned.get(f, getattr(self.instance, f)) for f in EDITABLE_FIELDS if f != "headers"}
        config["headers"] = cleaned.get("headers_input", {})
        for field in ("args", "env", "inherit_env"):
            if config.get(field) is None:
                config[field] = [] if field != "env" else {}
        try:
            validate_connector_config(config)
        except ValidationError as exc:
            mapping = {("transport" if k == "transport_type" else k): v for k, v in exc.message_dict.items()}
            for field, messages in mapping.items():
                target = "headers_input" if field == "headers" else (field if field in self.fields else None)
                for message in messages:
                    self.add_error(target, message)
        return cleaned

    def service_kwargs(self) -> dict[str, Any]:
        data = {f: self.cleaned_data[f] for f in EDITABLE_FIELDS if f != "headers" and f in self.cleaned_data}
        data["headers"] = self.cleaned_data.get("headers_input", {})
        return data
