#define _GNU_SOURCE
#include "CMSBSys.h"
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <net/route.h>
#include <netinet/in.h>
#include <linux/if_packet.h>
#include <linux/if_ether.h>

// The guest agent's interface setup, through the classic ioctls on an AF_INET socket:
// no netlink library in a static binary, and these few calls are all a static IPv4
// configuration needs. Each function keeps the failing ioctl's errno.

/// Fills the name of `request`; EINVAL when it does not fit.
static int prepare_request(struct ifreq *request, const char *interface) {
    if (strlen(interface) >= IFNAMSIZ) { errno = EINVAL; return -1; }
    memset(request, 0, sizeof *request);
    memcpy(request->ifr_name, interface, strlen(interface));
    return 0;
}

/// Runs one ioctl on a fresh control socket, keeping the ioctl's errno.
static int control_ioctl(unsigned long command, void *argument) {
    int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0) return -1;
    int result = ioctl(sock, command, argument);
    int saved = errno;
    close(sock);
    errno = saved;
    return result;
}

static void set_ipv4(struct sockaddr *target, const unsigned char address[4]) {
    struct sockaddr_in ipv4;
    memset(&ipv4, 0, sizeof ipv4);
    ipv4.sin_family = AF_INET;
    memcpy(&ipv4.sin_addr.s_addr, address, 4);
    memcpy(target, &ipv4, sizeof ipv4);
}

int msb_net_set_up(const char *interface, int up) {
    struct ifreq request;
    if (prepare_request(&request, interface) != 0) return -1;
    if (control_ioctl(SIOCGIFFLAGS, &request) != 0) return -1;
    if (up) request.ifr_flags |= IFF_UP; else request.ifr_flags &= ~IFF_UP;
    return control_ioctl(SIOCSIFFLAGS, &request);
}

int msb_net_set_mac(const char *interface, const unsigned char mac[6]) {
    struct ifreq request;
    if (prepare_request(&request, interface) != 0) return -1;
    request.ifr_hwaddr.sa_family = ARPHRD_ETHER;
    memcpy(request.ifr_hwaddr.sa_data, mac, 6);
    return control_ioctl(SIOCSIFHWADDR, &request);
}

int msb_net_set_mtu(const char *interface, unsigned int mtu) {
    struct ifreq request;
    if (prepare_request(&request, interface) != 0) return -1;
    if (mtu > 65535) { errno = EINVAL; return -1; }
    request.ifr_mtu = (int)mtu;
    return control_ioctl(SIOCSIFMTU, &request);
}

int msb_net_set_ipv4(const char *interface, const unsigned char address[4], const unsigned char netmask[4]) {
    struct ifreq request;
    if (prepare_request(&request, interface) != 0) return -1;
    set_ipv4(&request.ifr_addr, address);
    if (control_ioctl(SIOCSIFADDR, &request) != 0) return -1;
    // SIOCSIFADDR gave the address its classful mask; the real one comes second.
    if (prepare_request(&request, interface) != 0) return -1;
    set_ipv4(&request.ifr_netmask, netmask);
    return control_ioctl(SIOCSIFNETMASK, &request);
}

int msb_net_replace_default_route(const char *interface, const unsigned char gateway[4]) {
    static const unsigned char any[4] = {0, 0, 0, 0};
    char device[IFNAMSIZ];
    if (strlen(interface) >= IFNAMSIZ) { errno = EINVAL; return -1; }
    memset(device, 0, sizeof device);
    memcpy(device, interface, strlen(interface));

    // A restored guest may still hold a default route (through another gateway, or one
    // that outlived the interface going down): remove every one first, then add ours.
    for (int removed = 0; removed < 16; removed++) {
        struct rtentry stale;
        memset(&stale, 0, sizeof stale);
        set_ipv4(&stale.rt_dst, any);
        set_ipv4(&stale.rt_genmask, any);
        if (control_ioctl(SIOCDELRT, &stale) != 0) break;
    }
    struct rtentry route;
    memset(&route, 0, sizeof route);
    set_ipv4(&route.rt_dst, any);
    set_ipv4(&route.rt_genmask, any);
    set_ipv4(&route.rt_gateway, gateway);
    route.rt_flags = RTF_UP | RTF_GATEWAY;
    route.rt_dev = device;
    if (control_ioctl(SIOCADDRT, &route) != 0 && errno != EEXIST) return -1;
    return 0;
}

int msb_net_announce(const char *interface, const unsigned char mac[6], const unsigned char address[4],
                     const unsigned char gateway[4]) {
    unsigned int index = if_nametoindex(interface);
    if (index == 0) return -1;
    int sock = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_ARP));
    if (sock < 0) return -1;
    // An ARP request for the gateway from our address: passt answers it (a gratuitous
    // one, for our own address, it ignores without learning from it).
    unsigned char packet[28] = {0, 1, 8, 0, 6, 4, 0, 1};
    memcpy(packet + 8, mac, 6);
    memcpy(packet + 14, address, 4);
    memset(packet + 18, 0, 6);
    memcpy(packet + 24, gateway, 4);
    struct sockaddr_ll to;
    memset(&to, 0, sizeof to);
    to.sll_family = AF_PACKET;
    to.sll_protocol = htons(ETH_P_ARP);
    to.sll_ifindex = (int)index;
    to.sll_halen = 6;
    memset(to.sll_addr, 0xff, 6);
    ssize_t sent = sendto(sock, packet, sizeof packet, 0, (struct sockaddr *)&to, sizeof to);
    int saved = errno;
    close(sock);
    errno = saved;
    return sent == (ssize_t)sizeof packet ? 0 : -1;
}
