echo "$# $@"
