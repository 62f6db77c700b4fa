"""JSON Schemas of the HubSpot, Zoho Inventory and Lightspeed X-Series calls Goalpost makes,
written from the vendors' published documentation (each cites its page), for the contract
tests. They are strict (contracts.strict): a key the vendor does not document is refused.
Types follow the documents: HubSpot property values are strings or null; Zoho's item stock per
location is a string; Lightspeed amounts are JSON numbers.
"""

from __future__ import annotations

from typing import Any

from contracts import strict

STRING = {"type": "string"}
NULLABLE_STRING = {"type": ["string", "null"]}
INTEGER = {"type": "integer"}
NUMBER = {"type": "number"}
BOOLEAN = {"type": "boolean"}


def obj(required: list[str] | None = None, **properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required or []}


def array(items: Any) -> dict[str, Any]:
    return {"type": "array", "items": items}


# --- HubSpot CRM v3 --------------------------------------------------------------------------
# HubSpot/HubSpot-public-api-spec-collection, PublicApiSpecs/CRM/{Contacts,Companies,Deals}/
# Rollouts/424/v3/*.json: PublicObjectSearchRequest, FilterGroup, Filter, SimplePublicObject,
# CollectionResponseWithTotalSimplePublicObjectForwardPaging, Paging, Error. The error body's
# `status` is on developers.hubspot.com/docs/api/error-handling, and the 429 body's errorType
# and policyName on developers.hubspot.com/docs/api/usage-details ("Rate limits").

HUBSPOT_FILTER = obj(["operator", "propertyName"], highValue=STRING, propertyName=STRING,
                     values=array(STRING), value=STRING,
                     operator={"enum": ["EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN",
                                        "NOT_IN", "HAS_PROPERTY", "NOT_HAS_PROPERTY",
                                        "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"]})
HUBSPOT_SEARCH_REQUEST = obj(
    query=STRING, limit={"type": "integer", "maximum": 200}, after=STRING, sorts=array(STRING),
    properties=array(STRING),
    filterGroups={"type": "array", "maxItems": 6,
                  "items": obj(["filters"], filters=array(HUBSPOT_FILTER))})
HUBSPOT_OBJECT = obj(
    ["createdAt", "id", "properties", "updatedAt"], createdAt=STRING, archived=BOOLEAN,
    archivedAt=STRING, id=STRING, objectWriteTraceId=STRING, updatedAt=STRING,
    properties={"type": "object", "additionalProperties": NULLABLE_STRING},
    propertiesWithHistory={"type": "object"},
    associations={"type": "object", "additionalProperties": obj(
        ["results"], results=array(obj(["id", "type"], id=STRING, type=STRING)),
        paging={"type": "object"})})
HUBSPOT_NEXT = obj(["after"], after=STRING, link=STRING)
HUBSPOT_SEARCH_RESPONSE = obj(["total", "results"], total=INTEGER, results=array(HUBSPOT_OBJECT),
                              paging=obj(next=HUBSPOT_NEXT))
HUBSPOT_LIST_RESPONSE = obj(["results"], results=array(HUBSPOT_OBJECT),
                            paging=obj(next=HUBSPOT_NEXT,
                                       prev=obj(["before"], before=STRING, link=STRING)))
HUBSPOT_ERROR = obj(["category", "correlationId", "message"], status={"const": "error"},
                    subCategory=STRING, context={"type": "object"}, correlationId=STRING,
                    links={"type": "object"}, message=STRING, category=STRING,
                    errors=array({"type": "object"}))
HUBSPOT_RATE_LIMITED = obj(["status", "message", "errorType", "correlationId", "policyName"],
                           status={"const": "error"}, message=STRING,
                           errorType={"const": "RATE_LIMIT"}, correlationId=STRING,
                           policyName=STRING)

# --- Zoho Inventory v1 -----------------------------------------------------------------------
# Zoho's OpenAPI documents as mirrored in api-evangelist/zoho-inventory (openapi/
# zoho-inventory-{items,locations,organizations}-api-openapi.yml: list-all-the-items-response,
# retrieve-an-item-response with `locations`, list-all-location-response) and the pages they
# come from (zoho.com/inventory/api/v1/items: the list's stock_on_hand, available_stock and
# actual_available_stock; zoho.com/inventory/api/v1/warehouses for the legacy warehouses; the
# errors' {code, message} on zoho.com/inventory/api/v1/introduction#errors; the token answer
# on zoho.com/accounts/protocol/oauth/self-client/client-credentials-flow.html).

_ZOHO_ITEM = dict(
    group_id=STRING, group_name=STRING, item_id=STRING, name=STRING, status=STRING,
    source=STRING, unit=STRING, item_type=STRING, product_type=STRING, description=STRING,
    category_id=STRING, category_name=STRING, rate=NUMBER, purchase_rate=NUMBER,
    reorder_level=NUMBER, is_taxable=BOOLEAN, tax_id=STRING, tax_name=STRING,
    tax_percentage=NUMBER, sku=STRING, upc=STRING, ean=STRING, isbn=STRING,
    part_number=STRING, stock_on_hand=NUMBER, available_stock=NUMBER,
    actual_available_stock=NUMBER, created_time=STRING, last_modified_time=STRING)
ZOHO_LOCATION_STOCK = obj(
    ["location_id", "location_stock_on_hand"], location_id=STRING, location_name=STRING,
    status=STRING, is_primary=BOOLEAN, location_stock_on_hand=STRING,
    location_available_stock=STRING, location_actual_available_stock=STRING)
ZOHO_WAREHOUSE_STOCK = obj(
    ["warehouse_id", "warehouse_stock_on_hand"], warehouse_id=STRING, warehouse_name=STRING,
    status=STRING, is_primary=BOOLEAN, warehouse_stock_on_hand=NUMBER,
    warehouse_available_stock=NUMBER, warehouse_actual_available_stock=NUMBER)
ZOHO_PAGE_CONTEXT = obj(["page", "per_page", "has_more_page"], page=INTEGER, per_page=INTEGER,
                        has_more_page=BOOLEAN, report_name=STRING, applied_filter=STRING,
                        sort_column=STRING, sort_order=STRING)
ZOHO_ITEMS = obj(["code", "message", "items", "page_context"], code={"const": 0},
                 message=STRING, items=array(obj(["item_id", "name"], **_ZOHO_ITEM)),
                 page_context=ZOHO_PAGE_CONTEXT)
ZOHO_ITEM = obj(["code", "message", "item"], code={"const": 0}, message=STRING,
                item=obj(["item_id", "name"], **_ZOHO_ITEM, locations=array(ZOHO_LOCATION_STOCK),
                         warehouses=array(ZOHO_WAREHOUSE_STOCK)))
ZOHO_ADDRESS = obj(attention=STRING, street_address1=STRING, street_address2=STRING,
                   city=STRING, state=STRING, state_code=STRING, country=STRING)
ZOHO_LOCATIONS = obj(["code", "message", "locations"], code={"const": 0}, message=STRING,
                     locations=array(obj(
                         ["location_id", "location_name"], type=STRING, email=STRING,
                         phone=STRING, address=ZOHO_ADDRESS, location_id=STRING,
                         location_name=STRING, tax_settings_id=STRING,
                         parent_location_id=STRING, associated_series_ids=array(STRING),
                         auto_number_generation_id=STRING, is_all_users_selected=BOOLEAN,
                         associated_users=array({"type": "object"}))))
ZOHO_WAREHOUSES = obj(["code", "message", "warehouses"], code={"const": 0}, message=STRING,
                      warehouses=array(obj(
                          ["warehouse_id", "warehouse_name"], warehouse_id=STRING,
                          warehouse_name=STRING, is_primary=BOOLEAN, status=STRING,
                          attention=STRING, address=STRING, city=STRING, state=STRING,
                          zip=STRING, country=STRING, email=STRING, phone=STRING)))
ZOHO_ORGANIZATION = obj(["code", "message", "organization"], code={"const": 0},
                        message=STRING, organization=obj(
                            ["organization_id", "currency_code"], organization_id=STRING,
                            name=STRING, time_zone=STRING, currency_code=STRING,
                            currency_symbol=STRING, is_default_org=BOOLEAN, country=STRING))
ZOHO_ERROR = obj(["code", "message"], code={"type": "integer", "minimum": 1}, message=STRING)
ZOHO_TOKEN = obj(["access_token", "api_domain", "token_type", "expires_in"],
                 access_token=STRING, api_domain=STRING, token_type={"const": "Bearer"},
                 expires_in=INTEGER, scope=STRING)

# --- Lightspeed Retail X-Series API 2.0 --------------------------------------------------------
# x-series-api.lightspeedhq.com/docs/pagination (the {data, version{min, max}} page and its
# after/page_size parameters), x-series-api.lightspeedhq.com/reference (List sales, products,
# customers, outlets, inventory records: the fields below), x-series-api.lightspeedhq.com/
# docs/authorization (the token answer). Inventory records carry no created_at/updated_at.

_LS_COMMON = dict(id=STRING, version=INTEGER, deleted_at=NULLABLE_STRING)
_LS_DATED = dict(created_at=STRING, updated_at=NULLABLE_STRING)
LIGHTSPEED_RECORDS = {
    "outlets": obj(["id", "version"], **_LS_COMMON, **_LS_DATED, name=STRING,
                   time_zone=STRING, currency=STRING, physical_city=NULLABLE_STRING,
                   physical_country_id=NULLABLE_STRING),
    "registers": obj(["id", "version"], **_LS_COMMON, **_LS_DATED, name=STRING,
                     outlet_id=STRING, is_open=BOOLEAN),
    "products": obj(["id", "version"], **_LS_COMMON, **_LS_DATED, sku=STRING, handle=STRING,
                    name=STRING, description=STRING, active=BOOLEAN, has_inventory=BOOLEAN,
                    product_type=obj(id=STRING, name=STRING), price_including_tax=NUMBER,
                    price_excluding_tax=NUMBER, supply_price=NUMBER),
    "customers": obj(["id", "version"], **_LS_COMMON, **_LS_DATED, customer_code=STRING,
                     first_name=NULLABLE_STRING, last_name=NULLABLE_STRING,
                     email=NULLABLE_STRING, phone=NULLABLE_STRING, enable_loyalty=BOOLEAN),
    "sales": obj(["id", "version", "line_items"], **_LS_COMMON, **_LS_DATED, outlet_id=STRING,
                 register_id=STRING, customer_id=NULLABLE_STRING, invoice_number=STRING,
                 status=STRING, state=STRING, attributes=array(STRING), sale_date=STRING,
                 total_price=NUMBER, total_tax=NUMBER, note=NULLABLE_STRING, source=STRING,
                 return_for=NULLABLE_STRING, line_items=array(obj(
                     ["id", "product_id", "quantity"], id=STRING, product_id=STRING,
                     sequence=INTEGER, quantity=NUMBER, price=NUMBER, discount=NUMBER,
                     tax=NUMBER, price_total=NUMBER, tax_total=NUMBER,
                     note=NULLABLE_STRING))),
    "inventory": obj(["id", "version", "product_id", "outlet_id"], **_LS_COMMON,
                     product_id=STRING, outlet_id=STRING, inventory_level=NUMBER,
                     current_amount=NUMBER, reorder_point=NUMBER, reorder_amount=NUMBER,
                     average_cost=NUMBER),
}


def lightspeed_page(resource: str) -> dict[str, Any]:
    return obj(["data", "version"], data=array(LIGHTSPEED_RECORDS[resource]),
               version=obj(["min", "max"], min={"type": ["integer", "null"]},
                           max={"type": ["integer", "null"]}))


LIGHTSPEED_ERROR = obj(["error"], error=STRING, details=STRING)
LIGHTSPEED_TOKEN = obj(["access_token", "token_type", "expires", "expires_in",
                        "refresh_token"], access_token=STRING, token_type=STRING,
                       expires=INTEGER, expires_in=INTEGER, refresh_token=STRING,
                       domain_prefix=STRING)

SCHEMAS = {name: strict(schema) for name, schema in {
    "hubspot_search_request": HUBSPOT_SEARCH_REQUEST,
    "hubspot_search": HUBSPOT_SEARCH_RESPONSE, "hubspot_list": HUBSPOT_LIST_RESPONSE,
    "hubspot_error": HUBSPOT_ERROR, "hubspot_rate_limited": HUBSPOT_RATE_LIMITED,
    "zoho_items": ZOHO_ITEMS, "zoho_item": ZOHO_ITEM, "zoho_locations": ZOHO_LOCATIONS,
    "zoho_warehouses": ZOHO_WAREHOUSES, "zoho_organization": ZOHO_ORGANIZATION,
    "zoho_error": ZOHO_ERROR, "zoho_token": ZOHO_TOKEN,
    **{f"lightspeed_{name}": lightspeed_page(name) for name in LIGHTSPEED_RECORDS},
    "lightspeed_error": LIGHTSPEED_ERROR, "lightspeed_token": LIGHTSPEED_TOKEN,
}.items()}
