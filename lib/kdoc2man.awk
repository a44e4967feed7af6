# SPDX-License-Identifier: (LGPL-2.1 OR MIT)
#
# Split the output of the kernel's scripts/kernel-doc -man (run on
# llmdev.h) into one man page per function and per struct in section 3:
#
#   awk -v dir=OUT -v version=1.2.0 -v date=2026-12-02 -f kdoc2man.awk
#
# writes OUT/<function>.3 for every ".TH" page, with the section, the
# header and footer of libllmdev, the include line and the link option
# in the SYNOPSIS, LLMDEV_API dropped, and a SEE ALSO to libllmdev(3).
# Prints the functions' names, one per line, for the overview page.

function close_page() {
	if (file != "") {
		print ".SH SEE ALSO" > file
		print ".BR libllmdev (3)," > file
		print ".BR llmctl (8)" > file
		close(file)
	}
	file = ""
}

/^\.TH / {
	close_page()
	name = $2
	gsub(/"/, "", name)
	# a struct's page: .TH "Kernel API" 9 "struct NAME" ...
	if (match($0, /"struct [A-Za-z0-9_]+"/))
		name = substr($0, RSTART + 8, RLENGTH - 9)
	file = dir "/" name ".3"
	print name
	printf(".TH \"%s\" 3 \"%s\" \"libllmdev %s\" \"libllmdev Manual\"\n",
	       name, date, version) > file
	next
}

/^\.SH SYNOPSIS/ && file != "" {
	print > file
	print ".nf" > file
	print ".B #include <llmdev.h>" > file
	print ".PP" > file
	print "Link with \\fI\\-lllmdev\\fP (pkg-config: \\fIllmdev\\fP)." > file
	print ".fi" > file
	print ".PP" > file
	next
}

# the NAME line of a struct's page names the page ("struct X \- ..."
# would not be a whatis entry)
file != "" && /^struct [A-Za-z0-9_]+ \\- / {
	sub(/^struct /, "")
}

file != "" {
	sub(/"LLMDEV_API /, "\"")
	print > file
}

END { close_page() }
