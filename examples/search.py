"""A search form (POST, with a hidden token) and its results.

    SEARCH=river loopcrawl run examples/search.py
"""

import os

from loopcrawl import Field, Item, Spider

SHOP = os.environ.get("SHOP_URL", "http://127.0.0.1:8000/shop/")
QUERY = os.environ.get("SEARCH", "river")


class Hit(Item):
    target = "article.product_pod"
    title = Field(css="h3 a", attr="title")
    price = Field(css=".price_color", re=r"[\d.]+", parse=float)
    url = Field(css="h3 a::attr(href)")


class Search(Spider):
    start_urls = [SHOP + "search"]

    def parse(self, response):
        # The form's own fields (the hidden token, the category select) come along.
        return response.submit("form#search", data={"q": QUERY}, callback=self.results)

    def results(self, response):
        for hit in Hit.all(response):
            hit.url = response.urljoin(hit.url)
            yield hit
