"""URL routes of the payments endpoints (mounted under /v1 by config.urls)."""

from django.urls import path

from payments.api import views

urlpatterns = [
    path("payments", views.PaymentListCreateView.as_view(), name="payment-list"),
    path("payments/<str:payment_id>", views.PaymentDetailView.as_view(), name="payment-detail"),
    path("payments/<str:payment_id>/capture", views.PaymentCaptureView.as_view(), name="payment-capture"),
    path("payments/<str:payment_id>/void", views.PaymentVoidView.as_view(), name="payment-void"),
]

# Balance endpoints (payments/api/balance.py).
from payments.api import balance  # noqa: E402

urlpatterns += [
    path("balance", balance.BalanceView.as_view(), name="balance"),
    path("balance_transactions", balance.BalanceTransactionListView.as_view(), name="balance-transaction-list"),
]

# Refunds and events (issue 4).
from payments.api import events, refunds  # noqa: E402

urlpatterns += [
    path("refunds", refunds.RefundListCreateView.as_view(), name="refund-list"),
    path("refunds/<str:refund_id>", refunds.RefundDetailView.as_view(), name="refund-detail"),
    path("events", events.EventListView.as_view(), name="event-list"),
    path("events/<str:event_id>", events.EventDetailView.as_view(), name="event-detail"),
]
