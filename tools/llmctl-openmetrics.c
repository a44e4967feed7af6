// SPDX-License-Identifier: GPL-2.0
/*
 * llmctl stats --format openmetrics: the counters, HBM, sensors and links
 * of every card as an OpenMetrics 1.0 text exposition, which Prometheus
 * scrapes and node_exporter's textfile collector reads (its parser of the
 * older text format takes the same text: UNIT and EOF are comments to it,
 * and no type it lacks is used). Each metric family once, with a sample
 * per card (label card="llmdevN", serial="..."), families in a fixed order,
 * ending with "# EOF". Nanosecond counters are exposed in seconds.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llmctl.h"
#include "../driver/llmdev_regs.h"

struct om_card {
	struct llmdev *dev;
	int index;
	char serial[24];
	struct llmdev_info info;
	const struct llmdev_perf *perf;
	struct llmdev_link_info link[LLMDEV_NUM_LINK_PORTS];
	bool have_link[LLMDEV_NUM_LINK_PORTS];
	long temp_mc, temp_crit_mc, power_uw, power_cap_uw;	/* -1 if unknown */
};

static void family(FILE *f, const char *name, const char *type, const char *unit,
		   const char *help)
{
	fprintf(f, "# TYPE %s %s\n", name, type);
	if (unit)
		fprintf(f, "# UNIT %s %s\n", name, unit);
	fprintf(f, "# HELP %s %s\n", name, help);
}

static void labels(FILE *f, const struct om_card *c)
{
	fprintf(f, "{card=\"llmdev%d\",serial=\"%s\"}", c->index, c->serial);
}

/* a hwmon attribute of the card's PCI device, or -1 */
static long hwmon_attr(const struct om_card *c, const char *attr)
{
	char dir[PATH_MAX], path[PATH_MAX + 300], buf[32];
	struct dirent *de;
	long v = -1;
	DIR *d;

	snprintf(dir, sizeof(dir), "/sys/class/llmdev/llmdev%d/device/hwmon", c->index);
	d = opendir(dir);
	while (d && (de = readdir(d))) {
		if (strncmp(de->d_name, "hwmon", 5))
			continue;
		snprintf(path, sizeof(path), "%s/%s/%s", dir, de->d_name, attr);
		if (!read_sysfs(path, buf, sizeof(buf)))
			v = strtol(buf, NULL, 10);
		break;
	}
	if (d)
		closedir(d);
	return v;
}

/* the perf counters: name in the exposition, unit, help; NULL name: skipped */
static const struct {
	unsigned int index;
	const char *name, *unit, *help;
	bool ns;
} om_counters[] = {
	{ LLMDEV_COUNTER_H2C_BYTES, "llmdev_dma_h2c_bytes", "bytes",
	  "Bytes moved to the card by DMA descriptors that succeeded.", false },
	{ LLMDEV_COUNTER_C2H_BYTES, "llmdev_dma_c2h_bytes", "bytes",
	  "Bytes moved from the card by DMA descriptors that succeeded.", false },
	{ LLMDEV_COUNTER_H2C_DESC, "llmdev_dma_h2c_descriptors", NULL,
	  "Host-to-card DMA descriptors processed, failed ones included.", false },
	{ LLMDEV_COUNTER_C2H_DESC, "llmdev_dma_c2h_descriptors", NULL,
	  "Card-to-host DMA descriptors processed, failed ones included.", false },
	{ LLMDEV_COUNTER_IRQS, "llmdev_interrupts", NULL, "Interrupts the card raised.", false },
	{ LLMDEV_COUNTER_APERTURE_RD_BYTES, "llmdev_aperture_read_bytes", "bytes",
	  "Bytes read through the HBM aperture (BAR 2).", false },
	{ LLMDEV_COUNTER_APERTURE_WR_BYTES, "llmdev_aperture_written_bytes", "bytes",
	  "Bytes written through the HBM aperture (BAR 2).", false },
	{ LLMDEV_COUNTER_ERRORS, "llmdev_errors", NULL, "Errors the card logged.", false },
	{ LLMDEV_COUNTER_DMA_BUSY_NS, "llmdev_dma_busy_seconds", "seconds",
	  "Time the DMA engine spent processing descriptors.", true },
	{ LLMDEV_COUNTER_SCRUB_BYTES, "llmdev_scrub_bytes", "bytes",
	  "Bytes of HBM filled by the scrub engine.", false },
	{ LLMDEV_COUNTER_DOORBELLS, "llmdev_doorbells", NULL, "Doorbell writes accepted.", false },
	{ LLMDEV_COUNTER_LINK_TX_BYTES, "llmdev_collective_tx_bytes", "bytes",
	  "Collective data bytes sent on all peer links.", false },
	{ LLMDEV_COUNTER_LINK_RX_BYTES, "llmdev_collective_rx_bytes", "bytes",
	  "Collective data bytes received on all peer links.", false },
	{ LLMDEV_COUNTER_COLL_OPS, "llmdev_collectives", NULL,
	  "Collectives finished on the card, failed ones included.", false },
	{ LLMDEV_COUNTER_COLL_BUSY_NS, "llmdev_collective_busy_seconds", "seconds",
	  "Time with a collective running on the card.", true },
};

static void link_family(FILE *f, struct om_card *cards, int n, const char *name,
			const char *type, const char *unit, const char *help, int field)
{
	int i, p;

	family(f, name, type, unit, help);
	for (i = 0; i < n; i++)
		for (p = 0; p < LLMDEV_NUM_LINK_PORTS; p++) {
			const struct llmdev_link_info *l = &cards[i].link[p];
			uint64_t v;

			if (!cards[i].have_link[p])
				continue;
			switch (field) {
			case 0: v = l->state == LLMDEV_LINK_UP; break;
			case 1: v = l->tx_bytes; break;
			case 2: v = l->rx_bytes; break;
			case 3: v = l->tx_errors; break;
			case 4: v = l->rx_errors; break;
			default: v = l->down_count; break;
			}
			fprintf(f, "%s%s{card=\"llmdev%d\",serial=\"%s\",port=\"%d\"} %" PRIu64 "\n",
				name, strcmp(type, "counter") ? "" : "_total", cards[i].index,
				cards[i].serial, p, v);
		}
}

int print_openmetrics(FILE *f, struct llmdev **devs, const struct llmdev_perf *perf, int n)
{
	struct om_card *cards = calloc(n > 0 ? n : 1, sizeof(*cards));
	unsigned int k;
	int i, p, ret = 0;

	if (!cards)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		struct om_card *c = &cards[i];

		c->dev = devs[i];
		c->index = card_index(devs[i]);
		c->perf = &perf[i];
		ret = llmdev_get_info(devs[i], &c->info);
		if (ret) {
			msg("%s: %s", llmdev_name(devs[i]), llmdev_strerror(ret));
			free(cards);
			return ret;
		}
		snprintf(c->serial, sizeof(c->serial), "%016llx",
			 (unsigned long long)c->info.serial);
		for (p = 0; p < LLMDEV_NUM_LINK_PORTS; p++)
			c->have_link[p] = !llmdev_link_get_info(devs[i], p, &c->link[p]);
		c->temp_mc = hwmon_attr(c, "temp1_input");
		c->temp_crit_mc = hwmon_attr(c, "temp1_crit");
		c->power_uw = hwmon_attr(c, "power1_input");
		c->power_cap_uw = hwmon_attr(c, "power1_cap");
	}

	family(f, "llmdev_card", "gauge", NULL,
	       "1 for every card bound to the driver, labelled with its identity.");
	for (i = 0; i < n; i++)
		fprintf(f, "llmdev_card{card=\"llmdev%d\",serial=\"%s\",pci=\"%04x:%02x:%02x.%d\","
			"spec_version=\"%u.%u\"} 1\n", cards[i].index, cards[i].serial,
			cards[i].info.pci_domain, cards[i].info.pci_bus,
			cards[i].info.pci_devfn >> 3, cards[i].info.pci_devfn & 7,
			cards[i].info.spec_version >> 16, cards[i].info.spec_version & 0xffff);
	family(f, "llmdev_resets", "counter", NULL,
	       "Resets the card came back from since the driver bound to it.");
	for (i = 0; i < n; i++) {
		fprintf(f, "llmdev_resets_total");
		labels(f, &cards[i]);
		fprintf(f, " %u\n", card_attr_uint(cards[i].index, "reset_count"));
	}
	for (k = 0; k < sizeof(om_counters) / sizeof(om_counters[0]); k++) {
		family(f, om_counters[k].name, "counter", om_counters[k].unit, om_counters[k].help);
		for (i = 0; i < n; i++) {
			uint64_t v;

			if (om_counters[k].index >= cards[i].perf->num_counters)
				continue;
			v = cards[i].perf->counters[om_counters[k].index];
			fprintf(f, "%s_total", om_counters[k].name);
			labels(f, &cards[i]);
			if (om_counters[k].ns)
				fprintf(f, " %" PRIu64 ".%09" PRIu64 "\n", v / 1000000000,
					v % 1000000000);
			else
				fprintf(f, " %" PRIu64 "\n", v);
		}
	}
	family(f, "llmdev_hbm_size_bytes", "gauge", "bytes", "HBM of the card.");
	for (i = 0; i < n; i++) {
		fprintf(f, "llmdev_hbm_size_bytes");
		labels(f, &cards[i]);
		fprintf(f, " %llu\n", (unsigned long long)cards[i].info.hbm_size);
	}
	family(f, "llmdev_hbm_used_bytes", "gauge", "bytes", "HBM allocated to regions.");
	for (i = 0; i < n; i++) {
		fprintf(f, "llmdev_hbm_used_bytes");
		labels(f, &cards[i]);
		fprintf(f, " %llu\n", (unsigned long long)cards[i].info.hbm_used);
	}
#define SENSOR(name, unit, help, field, div, fmt)				\
	family(f, name, "gauge", unit, help);					\
	for (i = 0; i < n; i++) {						\
		if (cards[i].field < 0)						\
			continue;						\
		fprintf(f, name);						\
		labels(f, &cards[i]);						\
		fprintf(f, " " fmt "\n", cards[i].field / div, cards[i].field % div); \
	}
	SENSOR("llmdev_temperature_celsius", "celsius", "Die temperature.", temp_mc, 1000,
	       "%ld.%03ld")
	SENSOR("llmdev_temperature_critical_celsius", "celsius",
	       "Critical die temperature limit.", temp_crit_mc, 1000, "%ld.%03ld")
	SENSOR("llmdev_power_watts", "watts", "Board power.", power_uw, 1000000, "%ld.%06ld")
	SENSOR("llmdev_power_cap_watts", "watts", "Board power cap.", power_cap_uw, 1000000,
	       "%ld.%06ld")
#undef SENSOR
	link_family(f, cards, n, "llmdev_link_up", "gauge", NULL,
		    "1 while the peer-link port is up.", 0);
	link_family(f, cards, n, "llmdev_link_tx_bytes", "counter", "bytes",
		    "Bytes sent on the port since the card's last reset.", 1);
	link_family(f, cards, n, "llmdev_link_rx_bytes", "counter", "bytes",
		    "Bytes received on the port since the card's last reset.", 2);
	link_family(f, cards, n, "llmdev_link_tx_errors", "counter", NULL,
		    "Frames the port had to send again.", 3);
	link_family(f, cards, n, "llmdev_link_rx_errors", "counter", NULL,
		    "Frames received with CRC errors.", 4);
	link_family(f, cards, n, "llmdev_link_down", "counter", NULL,
		    "Times the link went from up to down.", 5);
	fprintf(f, "# EOF\n");
	free(cards);
	/* the stream's error (ENOSPC, ...), or EIO if it kept none */
	if (fflush(f) || ferror(f))
		return errno ? -errno : -EIO;
	return 0;
}
