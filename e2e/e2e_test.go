// Package e2e tests the real binary in the real image: it builds both,
// starts the image with the sdk/sandboxcontainer module, sends mail from a
// second container over a Docker network, and reads it back from the host
// over REST (SDK), POP3 and IMAP.
//
// The tests need a Docker engine. Where none answers they skip, unless
// MAILSANDBOX_E2E=1 (set by .ci/run), where they fail instead.
package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/smtp"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailsandbox/mailsandbox/internal/need"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/network"

	"github.com/mailsandbox/mailsandbox/sdk"
	"github.com/mailsandbox/mailsandbox/sdk/sandboxcontainer"
)

func TestMain(m *testing.M) {
	// The Ryuk reaper is an image we cannot pull here; every test cleans up
	// its own containers and networks with t.Cleanup instead.
	os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	code := m.Run()
	removeImage()
	os.Exit(code)
}

// required reports whether e2e tests must run (fail, not skip).
func required() bool { return os.Getenv("MAILSANDBOX_E2E") == "1" }

// needDocker skips (or, when required, fails) the test unless a Docker
// engine answers.
func needDocker(t *testing.T) {
	t.Helper()
	if testing.Short() && !required() {
		t.Skip("e2e: skipped in -short mode")
	}
	dockerOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		cli, err := testcontainers.NewDockerClientWithOpts(ctx)
		if err != nil {
			dockerErr = err
			return
		}
		defer cli.Close()
		if _, dockerErr = cli.Ping(ctx, client.PingOptions{}); dockerErr != nil {
			return
		}
		useLocalhostIfSameHost(ctx, cli)
	})
	if dockerErr != nil {
		need.Skip(t, need.Docker, fmt.Sprintf("no Docker engine answers (%v)", dockerErr))
	}
}

// useLocalhostIfSameHost handles a Docker engine that runs in the same
// host (network namespace) as this test while the test itself runs inside a
// container (docker-in-docker dev boxes and CI runners): testcontainers then
// sees /.dockerenv and reaches published ports through the default gateway,
// which does not lead back to this engine. The engine's name is its hostname,
// so when it equals ours the published ports are on localhost.
func useLocalhostIfSameHost(ctx context.Context, cli *testcontainers.DockerClient) {
	if _, set := os.LookupEnv("TESTCONTAINERS_HOST_OVERRIDE"); set {
		return
	}
	if h := os.Getenv("DOCKER_HOST"); h != "" && !strings.HasPrefix(h, "unix://") {
		return
	}
	info, err := cli.Info(ctx, client.InfoOptions{})
	host, herr := os.Hostname()
	if err != nil || herr != nil || info.Info.Name == "" || info.Info.Name != host {
		return
	}
	os.Setenv("TESTCONTAINERS_HOST_OVERRIDE", "localhost")
}

var (
	dockerOnce sync.Once
	dockerErr  error

	imageMu   sync.Mutex
	imageTag  string
	imageErr  error
	imageSize int64
)

// image builds the binary and the image once per test run and returns the
// image tag.
func image(t *testing.T) string {
	t.Helper()
	needDocker(t)
	imageMu.Lock()
	defer imageMu.Unlock()
	if imageTag == "" && imageErr == nil {
		imageTag, imageSize, imageErr = buildImage(t)
	}
	if imageErr != nil {
		t.Fatalf("e2e: build image: %v", imageErr)
	}
	return imageTag
}

// repoRoot is the module root: the e2e directory's parent.
func repoRoot() (string, error) { return filepath.Abs("..") }

// buildImage compiles a static linux binary into a fresh build context with
// the repository's Dockerfile and .dockerignore, and builds the Dockerfile's
// "prebuilt" target, which pulls nothing (see the Dockerfile's comments).
func buildImage(t *testing.T) (string, int64, error) {
	root, err := repoRoot()
	if err != nil {
		return "", 0, err
	}
	dir, err := os.MkdirTemp("", "mailsandbox-e2e-context-")
	if err != nil {
		return "", 0, err
	}
	defer os.RemoveAll(dir)

	start := time.Now()
	if bin := os.Getenv("MAILSANDBOX_TEST_BINARY"); bin != "" {
		// A static linux binary built beforehand from this checkout
		// (.ci/run builds one for every package that runs the binary).
		if err := copyFile(bin, filepath.Join(dir, "mailsandbox"), 0o755); err != nil {
			return "", 0, err
		}
	} else {
		// The same source in the same checkout gives the same bytes, so
		// the image below is reused (see imageTagFor).
		cmd := exec.Command("go", "build", "-ldflags=-s -w", "-o", filepath.Join(dir, "mailsandbox"), "./cmd/mailsandbox")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", 0, fmt.Errorf("go build ./cmd/mailsandbox: %v\n%s", err, out)
		}
	}
	for _, f := range []string{"Dockerfile", ".dockerignore"} {
		if err := copyFile(filepath.Join(root, f), filepath.Join(dir, f), 0o644); err != nil {
			return "", 0, err
		}
	}
	t.Logf("e2e: built binary in %s", time.Since(start).Round(time.Millisecond))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tag, err := imageTagFor(dir)
	if err != nil {
		return "", 0, err
	}
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return "", 0, err
	}
	defer cli.Close()
	ref := imageRepo + ":" + tag
	if ins, err := cli.ImageInspect(ctx, ref); err == nil {
		t.Logf("e2e: image %s is built already (same binary and Dockerfile)", ref)
		return ref, ins.Size, nil
	}
	provider, err := testcontainers.NewDockerProvider()
	if err != nil {
		return "", 0, fmt.Errorf("docker provider: %w", err)
	}
	defer provider.Close()
	var buildLog bytes.Buffer
	start = time.Now()
	ref, err = provider.BuildImage(ctx, &testcontainers.ContainerRequest{
		FromDockerfile: testcontainers.FromDockerfile{
			Context:        dir,
			Dockerfile:     "Dockerfile",
			Repo:           imageRepo,
			Tag:            tag,
			KeepImage:      true,
			BuildLogWriter: &buildLog,
			BuildOptionsModifier: func(o *client.ImageBuildOptions) {
				o.Target = "prebuilt"
			},
		},
	})
	if err != nil {
		return "", 0, fmt.Errorf("docker build --target prebuilt: %w\n%s", err, buildLog.String())
	}
	t.Logf("e2e: built image %s in %s", ref, time.Since(start).Round(time.Millisecond))
	ins, err := cli.ImageInspect(ctx, ref)
	if err != nil {
		return ref, 0, fmt.Errorf("inspect image: %w", err)
	}
	return ref, ins.Size, nil
}

const imageRepo = "mailsandbox-e2e"

// imageTagFor names the image after what goes into it (the build
// context: binary, Dockerfile, .dockerignore), so an unchanged image is
// not built again by the next run.
func imageTagFor(dir string) (string, error) {
	h := sha256.New()
	for _, f := range []string{"mailsandbox", "Dockerfile", ".dockerignore"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d\n", f, len(b))
		h.Write(b)
	}
	return fmt.Sprintf("c%x", h.Sum(nil)[:8]), nil
}

// removeImage keeps this run's image for the next run and removes the
// other mailsandbox-e2e images older than a day: older code's, which no
// run going on now (another checkout's, say) is still using.
func removeImage() {
	if imageTag == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return
	}
	defer cli.Close()
	imgs, err := cli.ImageList(ctx, client.ImageListOptions{Filters: make(client.Filters).Add("reference", imageRepo)})
	if err != nil {
		return
	}
	for _, img := range imgs.Items {
		if time.Since(time.Unix(img.Created, 0)) < 24*time.Hour || slices.Contains(img.RepoTags, imageTag) {
			continue
		}
		for _, ref := range img.RepoTags {
			// Not its parents: another build may be using the cached layers.
			_, _ = cli.ImageRemove(ctx, ref, client.ImageRemoveOptions{PruneChildren: false})
		}
	}
}

func copyFile(src, dst string, mode os.FileMode) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, mode)
}

// report prints a measurement to the test log and to stdout, so it shows in
// CI output even without -v.
func report(t *testing.T, format string, args ...any) {
	t.Helper()
	t.Logf(format, args...)
	line := fmt.Sprintf("e2e: "+format+"\n", args...)
	fmt.Print(line)
	// CI keeps $MAILSANDBOX_ARTIFACTS; go test hides a passing package's
	// stdout unless -v.
	if dir := os.Getenv("MAILSANDBOX_ARTIFACTS"); dir != "" {
		if f, err := os.OpenFile(filepath.Join(dir, "e2e-measurements.txt"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err == nil {
			fmt.Fprintf(f, "%s %s", time.Now().UTC().Format(time.RFC3339), line)
			f.Close()
		}
	}
}

func TestImage(t *testing.T) {
	ref := image(t)
	t.Parallel() // after image: its skip (no Docker) keeps the package out of the cache
	report(t, "image %s size: %.1f MB (%d bytes)", ref, float64(imageSize)/1e6, imageSize)
	if imageSize >= 30<<20 {
		t.Errorf("image is %d bytes, want under 30 MB", imageSize)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ins, err := cli.ImageInspect(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	cfg := ins.Config
	if cfg == nil || cfg.Healthcheck == nil || len(cfg.Healthcheck.Test) == 0 {
		t.Fatalf("image has no HEALTHCHECK: %+v", cfg)
	}
	for _, p := range []string{"1025/tcp", "8025/tcp", "1110/tcp", "1143/tcp"} {
		if _, ok := cfg.ExposedPorts[p]; !ok {
			t.Errorf("image does not expose %s (exposes %v)", p, cfg.ExposedPorts)
		}
	}
}

// TestSendmailFromSecondContainer is the whole product from outside: mail
// from an "application" container on a private network, read back from the
// host through every protocol.
func TestSendmailFromSecondContainer(t *testing.T) {
	ref := image(t)
	t.Parallel() // after image: its skip (no Docker) keeps the package out of the cache
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	nw, err := network.New(ctx)
	testcontainers.CleanupNetwork(t, nw)
	if err != nil {
		t.Fatalf("create network: %v", err)
	}

	start := time.Now()
	ctr, err := sandboxcontainer.Run(ctx, ref, network.WithNetwork([]string{"sandbox"}, nw))
	testcontainers.CleanupContainer(t, ctr)
	if err != nil {
		t.Fatal(err)
	}
	report(t, "container start to /healthz 200: %s", time.Since(start).Round(time.Millisecond))

	c, err := ctr.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// 1. sendmail -t: recipients from To, Cc and Bcc headers.
	msg := "From: App <noreply@app.example>\r\n" +
		"To: Bob <Bob@Example.com>\r\n" +
		"Cc: carol@example.com\r\n" +
		"Bcc: dave@example.com\r\n" +
		"Subject: Welcome to App\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"\r\n" +
		"Hi Bob,\r\n\r\nconfirm here: https://app.example/confirm?t=abc123\r\nYour code is 482913.\r\n"
	out := runSendmail(t, ctx, ref, nw, []string{"sendmail", "-t"}, msg)
	t.Logf("sendmail -t output: %q", out)

	// 2. sendmail with recipients on the command line and -f.
	msg2 := "From: Ops <ops@app.example>\r\nTo: undisclosed-recipients:;\r\nSubject: Nightly report\r\n\r\nall good\r\n"
	runSendmail(t, ctx, ref, nw, []string{"sendmail", "-f", "ops@app.example", "eve@example.com"}, msg2)

	// REST through the SDK.
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	m, err := c.Wait(wctx, sdk.Filter{To: "bob@example.com", Subject: "Welcome"})
	if err != nil {
		t.Fatal(err)
	}
	if m.From.Address != "noreply@app.example" {
		t.Errorf("from = %+v", m.From)
	}
	link, err := m.FindLink("/confirm")
	if err != nil || link != "https://app.example/confirm?t=abc123" {
		t.Errorf("FindLink = %q, %v", link, err)
	}
	code, err := m.ExtractCode(`code is (\d{6})`)
	if err != nil || code != "482913" {
		t.Errorf("ExtractCode = %q, %v", code, err)
	}
	wantBoxes := map[string]bool{"bob@example.com": true, "carol@example.com": true, "dave@example.com": true}
	for _, mb := range m.Mailboxes {
		delete(wantBoxes, mb)
	}
	if len(wantBoxes) > 0 {
		t.Errorf("message filed in %v; missing %v", m.Mailboxes, wantBoxes)
	}
	if m2, err := c.Wait(wctx, sdk.Filter{To: "eve@example.com"}); err != nil {
		t.Error(err)
	} else if m2.Subject != "Nightly report" || m2.Envelope.MailFrom != "ops@app.example" {
		t.Errorf("second message: subject %q, mail from %q", m2.Subject, m2.Envelope.MailFrom)
	}
	raw, err := c.Raw(ctx, m.ID)
	if err != nil || !bytes.Contains(raw, []byte("Subject: Welcome to App")) {
		t.Errorf("Raw = %q, %v", raw, err)
	}

	// POP3 from the host.
	pop3Addr, err := ctr.POP3Endpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if body := pop3Retr(t, pop3Addr, "carol@example.com"); !strings.Contains(body, "Subject: Welcome to App") {
		t.Errorf("POP3 RETR 1 for carol: %q", body)
	}

	// IMAP from the host.
	imapAddr, err := ctr.IMAPEndpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if subj := imapFirstSubject(t, imapAddr, "dave@example.com"); subj != "Welcome to App" {
		t.Errorf("IMAP subject for dave = %q", subj)
	}

	// The image's own HEALTHCHECK (mailsandbox healthcheck) turns healthy.
	waitHealthy(t, ctx, ctr)
	report(t, "container start to Docker HEALTHCHECK healthy: at most %s (checked after the mail tests; the first check runs one --interval after start)", time.Since(start).Round(time.Millisecond))
}

// runSendmail runs the image with args (e.g. sendmail -t) on the network,
// with MAILSANDBOX_SMTP_ADDR pointing at the sandbox's alias, writes stdin
// to it and waits for it to exit 0. It returns the combined output.
func runSendmail(t *testing.T, ctx context.Context, ref string, nw *testcontainers.DockerNetwork, args []string, stdin string) string {
	t.Helper()
	ctr, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{
		ContainerRequest: testcontainers.ContainerRequest{
			Image:    ref,
			Cmd:      args,
			Env:      map[string]string{"MAILSANDBOX_SMTP_ADDR": "sandbox:1025"},
			Networks: []string{nw.Name},
			ConfigModifier: func(c *container.Config) {
				c.OpenStdin, c.StdinOnce, c.AttachStdin = true, true, true
				c.AttachStdout, c.AttachStderr = true, true
				c.Healthcheck = &container.HealthConfig{Test: []string{"NONE"}}
			},
		},
		Started: false,
	})
	testcontainers.CleanupContainer(t, ctr)
	if err != nil {
		t.Fatalf("create sendmail container: %v", err)
	}
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	id := ctr.GetContainerID()
	att, err := cli.ContainerAttach(ctx, id, client.ContainerAttachOptions{Stream: true, Stdin: true, Stdout: true, Stderr: true})
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	defer att.Close()
	waitRes := cli.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if err := ctr.Start(ctx); err != nil {
		t.Fatalf("start sendmail container: %v", err)
	}
	go func() {
		_, _ = io.WriteString(att.Conn, stdin)
		_ = att.CloseWrite()
	}()
	var outBuf bytes.Buffer
	copied := make(chan struct{})
	go func() {
		_, _ = stdcopy.StdCopy(&outBuf, &outBuf, att.Reader)
		close(copied)
	}()
	select {
	case res := <-waitRes.Result:
		<-copied
		if res.StatusCode != 0 {
			t.Fatalf("%v exited %d: %s", args, res.StatusCode, outBuf.String())
		}
	case err := <-waitRes.Error:
		t.Fatalf("wait for %v: %v", args, err)
	case <-ctx.Done():
		t.Fatalf("%v did not exit: %v; output so far: %s", args, ctx.Err(), outBuf.String())
	}
	return outBuf.String()
}

// pop3Retr logs in as user and returns message 1 of the maildrop.
func pop3Retr(t *testing.T, addr, user string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatalf("POP3 dial: %v", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	tp := textproto.NewConn(conn)
	ok := func(what string) string {
		t.Helper()
		line, err := tp.ReadLine()
		if err != nil || !strings.HasPrefix(line, "+OK") {
			t.Fatalf("POP3 %s: %q, %v", what, line, err)
		}
		return line
	}
	ok("greeting")
	tp.PrintfLine("USER %s", user)
	ok("USER")
	tp.PrintfLine("PASS anything")
	ok("PASS")
	tp.PrintfLine("STAT")
	if stat := ok("STAT"); strings.HasPrefix(stat, "+OK 0 ") {
		t.Fatalf("POP3 maildrop of %s is empty: %q", user, stat)
	}
	tp.PrintfLine("RETR 1")
	ok("RETR")
	body, err := tp.ReadDotBytes()
	if err != nil {
		t.Fatalf("POP3 RETR body: %v", err)
	}
	tp.PrintfLine("QUIT")
	ok("QUIT")
	return string(body)
}

// imapFirstSubject logs in as user, selects INBOX and returns the subject
// of message 1.
func imapFirstSubject(t *testing.T, addr, user string) string {
	t.Helper()
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		t.Fatalf("IMAP dial: %v", err)
	}
	defer c.Close()
	if err := c.Login(user, "anything").Wait(); err != nil {
		t.Fatalf("IMAP LOGIN: %v", err)
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatalf("IMAP SELECT: %v", err)
	}
	if sel.NumMessages == 0 {
		t.Fatalf("IMAP INBOX of %s is empty", user)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1), &imap.FetchOptions{Envelope: true}).Collect()
	if err != nil || len(msgs) != 1 || msgs[0].Envelope == nil {
		t.Fatalf("IMAP FETCH: %v, %v", msgs, err)
	}
	_ = c.Logout().Wait()
	return msgs[0].Envelope.Subject
}

// waitHealthy polls the container's Docker health status.
func waitHealthy(t *testing.T, ctx context.Context, ctr *sandboxcontainer.Container) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	last := ""
	for {
		ins, err := ctr.Inspect(ctx)
		if err == nil && ins.State != nil && ins.State.Health != nil {
			last = string(ins.State.Health.Status)
			if last == "healthy" {
				return
			}
			if last == "unhealthy" {
				t.Fatalf("container is unhealthy: %+v", ins.State.Health.Log)
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("container not healthy (last status %q): %v", last, ctx.Err())
		case <-tick.C:
		}
	}
}

// TestContainerOptions checks that the module's options reach the binary
// as MAILSANDBOX_* variables: a self-signed certificate (STARTTLS offered)
// and retention by count.
func TestContainerOptions(t *testing.T) {
	ref := image(t)
	t.Parallel() // after image: its skip (no Docker) keeps the package out of the cache
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ctr, err := sandboxcontainer.Run(ctx, ref,
		sandboxcontainer.WithTLSSelfSigned(),
		sandboxcontainer.WithMaxMessages(2),
	)
	testcontainers.CleanupContainer(t, ctr)
	if err != nil {
		t.Fatal(err)
	}
	smtpAddr, err := ctr.SMTPEndpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		c, err := smtp.Dial(smtpAddr)
		if err != nil {
			t.Fatal(err)
		}
		if ok, _ := c.Extension("STARTTLS"); !ok {
			t.Fatal("STARTTLS not offered with WithTLSSelfSigned")
		}
		// The certificate is self-signed for the container's names.
		if err := c.StartTLS(&tls.Config{InsecureSkipVerify: true}); err != nil {
			t.Fatalf("STARTTLS: %v", err)
		}
		if err := c.Mail("a@example.com"); err != nil {
			t.Fatal(err)
		}
		if err := c.Rcpt("kept@example.com"); err != nil {
			t.Fatal(err)
		}
		w, err := c.Data()
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(w, "Subject: n%d\r\n\r\nx\r\n", i)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		c.Quit()
	}
	client, err := ctr.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if _, err := client.Wait(wctx, sdk.Filter{Subject: "n2"}); err != nil {
		t.Fatal(err)
	}
	// Pruning may run just after ingest; poll briefly for it.
	var total int
	for {
		list, err := client.Search(wctx, sdk.Filter{To: "kept@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		total = list.Total
		if total <= 2 {
			break
		}
		select {
		case <-wctx.Done():
			t.Fatalf("with --max-messages 2 the sandbox still holds %d messages", total)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
