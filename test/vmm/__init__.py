"""test/vmm: a scripted vhost-user front end (a VMM stand-in); see frontend.py."""
