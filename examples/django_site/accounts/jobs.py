"""The jobs of the accounts app; ``manage.py roadie run`` imports this module itself."""

from django.core.mail import send_mail
from django.utils import timezone

from accounts.models import Account
from roadie.contrib.django import Job


class WelcomeEmail(Job, queue="mail"):
    def perform(self, account_id: int) -> None:
        # Pushed with perform_async inside the view's transaction, this could run before
        # the commit and fail with Account.DoesNotExist. perform_async_on_commit cannot.
        account = Account.objects.get(id=account_id)
        send_mail(
            "Welcome!",
            f"Hi {account.name}, welcome aboard.",
            None,
            [account.email],
        )
        Account.objects.filter(id=account_id).update(welcomed_at=timezone.now())
