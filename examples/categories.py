"""Items as dataclasses: one record per category, its books counted across pages.

The category's pages are followed one after another, carrying the running
list in ``cb_kwargs``; the record is yielded from the last page.
"""

import os
from dataclasses import dataclass, field

from loopcrawl import Spider

SHOP = os.environ.get("SHOP_URL", "http://127.0.0.1:8000/shop/")


@dataclass
class Category:
    name: str
    books: int
    titles: list[str] = field(default_factory=list)


class Categories(Spider):
    start_urls = [SHOP]

    def parse(self, response):
        for link in response.css("ul.categories a"):
            name = link.css("::text").get()
            yield response.follow(link, callback=self.category, cb_kwargs={"name": name})

    async def category(self, response, name, titles=()):
        titles = [*titles, *response.css("article.product_pod h3 a::attr(title)").getall()]
        next_page = response.css("li.next a")
        if next_page:
            yield response.follow(next_page[0], callback=self.category,
                                  cb_kwargs={"name": name, "titles": titles})
        else:
            yield Category(name=name, books=len(titles), titles=titles)
