from accounts import views
from django.urls import path

urlpatterns = [
    path("signup", views.signup),
    path("accounts/<int:account_id>", views.account),
]
