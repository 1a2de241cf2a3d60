// Records MailHog v1.0.1's answers for ../*.eml with MailHog's own data and
// storage packages (MailHog itself does not build here: one of its
// dependencies, github.com/ian-kent/linkio, is not served by the module
// proxy). Not part of the mailsandbox module; run: go run . > ../reference.json
module mailhogreference

go 1.22

require (
	github.com/mailhog/data v1.0.1 // indirect
	github.com/mailhog/storage v1.0.1 // indirect
	gopkg.in/mgo.v2 v2.0.0-20190816093944-a6b53ec6cb22 // indirect
)
