from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from accounts.jobs import WelcomeEmail
from accounts.models import Account


@csrf_exempt  # an API endpoint for the example's curl; keep CSRF on for real forms
@require_POST
def signup(request: HttpRequest) -> JsonResponse:
    # ATOMIC_REQUESTS: this view runs in one transaction, committed after it returns.
    account = Account.objects.create(email=request.POST["email"], name=request.POST["name"])
    jid = WelcomeEmail.perform_async_on_commit(account.id)
    return JsonResponse({"id": account.id, "jid": jid}, status=201)


@require_GET
def account(request: HttpRequest, account_id: int) -> JsonResponse:
    found = get_object_or_404(Account, id=account_id)
    welcomed = found.welcomed_at.isoformat() if found.welcomed_at else None
    return JsonResponse({"id": found.id, "email": found.email, "welcomed_at": welcomed})
