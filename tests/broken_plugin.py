"""A plugin whose import fails, as a third party's broken release would."""

raise ImportError("this plugin needs a library that is not installed")
