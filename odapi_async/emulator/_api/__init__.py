"""The API's behaviour: the spec's routes, request validation, handlers, actions, documented rules and views."""
