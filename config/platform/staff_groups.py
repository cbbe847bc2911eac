"""The two ready-made staff groups and how each app's data migration grants its permissions to them.

- "Finance" reads everything operators need, voids payments, releases settlement holds, edits fraud rules and
  lists, and resolves reconciliation discrepancies.
- "Support" only reads.

A staff user in neither group (and without permissions of their own) sees nothing in the admin. Each app grants
its own permissions from its own data migration (payments: payments and ledger; fraud, reconciliation and
webhooks: theirs; the platform's merchants and outbox apps: theirs), so no app needs to know another's models.
Replaying dead letters (`payments.replay_outbox`) is in neither group: give it to the people who run the platform.
When models move between apps, `content_types_move` carries their permissions along.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

FINANCE = "Finance"
SUPPORT = "Support"


def view_permissions(apps: Any, app_label: str) -> list[str]:
    """`app_label.view_<model>` for every model of the app in the (historical) registry `apps`."""
    return [f"{app_label}.view_{model._meta.model_name}" for model in apps.get_app_config(app_label).get_models()]


def grant_permissions(apps: Any, grants: Mapping[str, Iterable[str]]) -> None:
    """Add permissions (`"app_label.codename"`) to groups (created when missing), for use in a data migration.

    Permissions are normally created after all migrations ran (post_migrate); this creates those of the apps
    involved first, so a fresh database gets complete groups. Raises LookupError for an unknown permission.
    """
    from django.contrib.auth.management import create_permissions

    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    labels = {perm.split(".", 1)[0] for perms in grants.values() for perm in perms}
    for label in sorted(labels):
        app_config = apps.get_app_config(label)
        models_module = getattr(app_config, "models_module", None)
        app_config.models_module = models_module or True  # historical app configs have none; it must be truthy
        try:
            create_permissions(app_config, verbosity=0, apps=apps)
        finally:
            app_config.models_module = models_module
    for group_name, perms in grants.items():
        group, _ = group_model.objects.get_or_create(name=group_name)
        for perm in perms:
            label, codename = perm.split(".", 1)
            found = permission_model.objects.filter(content_type__app_label=label, codename=codename).first()
            if found is None:
                raise LookupError(f"no permission {perm}")
            group.permissions.add(found)


def revoke_permissions(apps: Any, grants: Mapping[str, Iterable[str]]) -> None:
    """The reverse of grant_permissions: remove those permissions from the groups (the groups stay)."""
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    for group_name, perms in grants.items():
        group = group_model.objects.filter(name=group_name).first()
        if group is None:
            continue
        for perm in perms:
            label, codename = perm.split(".", 1)
            group.permissions.remove(*permission_model.objects.filter(content_type__app_label=label, codename=codename))


def content_types_move(apps: Any, *, models: Iterable[str], from_label: str, to_label: str) -> None:
    """Give the content types of `models` (lower-case model names) the app label `to_label` instead of
    `from_label`, for a data migration that follows a state-only move of models between apps. Their permissions
    (and so every group and user that holds them) follow, since they point at the content type's row.

    A model whose content type already exists under `to_label` is left alone (nothing to move). Rows are renamed,
    never copied.
    """
    content_type = apps.get_model("contenttypes", "ContentType")
    for model in models:
        if not content_type.objects.filter(app_label=to_label, model=model).exists():
            content_type.objects.filter(app_label=from_label, model=model).update(app_label=to_label)
