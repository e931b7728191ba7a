from django.db import models


class Account(models.Model):
    email = models.EmailField(unique=True)
    name = models.CharField(max_length=100)
    welcomed_at = models.DateTimeField(null=True)
