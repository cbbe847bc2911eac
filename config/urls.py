"""Root URLs: the merchant API under /v1 with its OpenAPI schema and docs, the admin, metrics, health probes."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from config import health
from config.metrics import metrics_view

_public = {"authentication_classes": [], "permission_classes": [], "throttle_classes": []}

urlpatterns = [
    path("v1/schema", SpectacularAPIView.as_view(**_public), name="schema"),
    path("v1/docs", SpectacularSwaggerView.as_view(url_name="schema", **_public), name="docs"),
    path("v1/docs/redoc", SpectacularRedocView.as_view(url_name="schema", **_public), name="docs-redoc"),
    path("v1/", include("payments.api.urls")),
    path("v1/", include("webhooks.api")),
    path("admin/", admin.site.urls),
    path("metrics", metrics_view, name="metrics"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
]

handler404 = "config.platform.http.problems.handler404"
handler500 = "config.platform.http.problems.handler500"
