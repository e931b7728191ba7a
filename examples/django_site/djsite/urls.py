from accounts import views
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("signup", views.signup),
    path("accounts/<int:account_id>", views.account),
    path("admin/", admin.site.urls),
    # roadie's dashboard, for staff only (the admin login)
    path("roadie/", include("roadie.contrib.django.urls")),
]
