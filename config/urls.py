"""Root URLs: the merchant API under /v1, the admin, metrics and health probes."""

from django.contrib import admin
from django.urls import include, path

from config import health
from payments.metrics import metrics_view

urlpatterns = [
    path("v1/", include("payments.api.urls")),
    path("v1/", include("webhooks.api")),
    path("admin/", admin.site.urls),
    path("metrics", metrics_view, name="metrics"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
]

handler404 = "payments.api.problems.handler404"
handler500 = "payments.api.problems.handler500"
