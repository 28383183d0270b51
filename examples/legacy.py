"""Pages in legacy encodings: windows-1251 declared only in a <meta http-equiv>,
GBK in a <meta charset>; ``response.text`` decodes both (header, BOM, <meta>,
then detection), so the spider never thinks about bytes."""

import os

from loopcrawl import Request, Spider

SHOP = os.environ.get("SHOP_URL", "http://127.0.0.1:8000/shop/")


class Legacy(Spider):
    async def start_requests(self):
        for page in ("cp1251", "gbk"):
            yield Request(f"{SHOP}legacy/{page}.html", cb_kwargs={"page": page})

    def parse(self, response, page):
        for title in response.css("li.new a::text").getall():
            yield {"page": page, "encoding": response.encoding, "title": title}
