"""Sessions: log in through a form (the cookie it sets is kept for the crawl),
read a page behind HTTP basic auth, and page through a JSON API."""

import os

from loopcrawl import Request, Spider

SHOP = os.environ.get("SHOP_URL", "http://127.0.0.1:8000/shop/")


class Account(Spider):
    custom_settings = {"concurrency": 4}

    async def start_requests(self):
        yield Request(SHOP + "login", callback=self.login)
        yield Request(SHOP + "admin/", callback=self.admin, auth=("admin", "secret"))
        yield Request(SHOP + "api/books?page=1", callback=self.api)

    def login(self, response):
        # POST, then 303 to /shop/account with a session cookie: the callback
        # gets the account page.
        return response.submit("form#login", data={"username": "reader",
                                                   "password": "open sesame"},
                               callback=self.account)

    def account(self, response):
        yield {"kind": "account", "url": response.url,
               "welcome": response.css("p.welcome::text").get()}

    def admin(self, response):
        yield {"kind": "admin", "report": response.css("h1::text").get()}

    def api(self, response):
        data = response.json()
        for book in data["books"]:
            yield {"kind": "api", "id": book["id"], "title": book["title"]}
        if data["next"]:
            yield response.follow(data["next"], callback=self.api)
