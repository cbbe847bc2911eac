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
