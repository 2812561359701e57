import django_filters
from rest_framework.filters import SearchFilter
from rest_framework.pagination import PageNumberPagination

from clips.models import Clip
from clips.selectors import SEARCH_MAX_TERMS


class ClipFilter(django_filters.FilterSet):
    duration_min = django_filters.NumberFilter(field_name="duration", lookup_expr="gte")
    duration_max = django_filters.NumberFilter(field_name="duration", lookup_expr="lte")

    class Meta:
        model = Clip
        fields = ["genre", "status"]


class ClipSearchFilter(SearchFilter):
    """Search on a few short terms, so a 10k-character query stays a small query."""

    max_terms = SEARCH_MAX_TERMS
    max_term_length = 100

    def get_search_terms(self, request):
        terms = super().get_search_terms(request)
        return [term[: self.max_term_length] for term in terms[: self.max_terms]]


class ClipPagination(PageNumberPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100
