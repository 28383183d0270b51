"""Every book in the shop: listing pages → detail pages, with nested reviews.

    loopcrawl testsite --port 8000 &
    loopcrawl run examples/books.py -o books.jsonl
"""

import os

from loopcrawl import Dedup, Field, Item, Spider

SHOP = os.environ.get("SHOP_URL", "http://127.0.0.1:8000/shop/")
STARS = {"One": 1, "Two": 2, "Three": 3, "Four": 4, "Five": 5}


def stock(text: str) -> int:
    """'In stock (7 available)' -> 7; 'Out of stock' -> 0."""
    return int(text.split("(")[1].split()[0]) if "(" in text else 0


class Review(Item):
    author = Field(css=".author")
    stars = Field(css=".stars", attr="data-stars", parse=int)
    text = Field(css="p.text")


class Book(Item):
    title = Field(css=".product_main h1", required=True)
    price = Field(css=".product_main .price_color", re=r"[\d.]+", parse=float)
    stock = Field(css=".product_main .availability", parse=stock)
    rating = Field(css=".product_main .star-rating", attr="class",
                   parse=lambda c: STARS[c.split()[-1]])
    category = Field(css=".breadcrumb li:nth-child(2) a")
    upc = Field(xpath="//th[text()='UPC']/following-sibling::td/text()")
    description = Field(css="#product_description + p")
    reviews = Field(css="#reviews article.review", item=Review, many=True)
    url = Field()  # filled by hand


class Books(Spider):
    start_urls = [SHOP]
    pipelines = [Dedup("upc")]

    async def parse(self, response):
        yield response.follow_all(css="article.product_pod h3 a", callback=self.parse_book)
        yield response.follow_all(css="li.next a")  # the next listing page: parse again

    def parse_book(self, response):
        book = Book.one(response)
        book.url = response.url
        return book
