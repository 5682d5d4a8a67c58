// Java's default PKIX validation of one chain, with revocation checking on, as a relying party
// on the JDK does it: java PkixCheck.java ocsp|crldp root.pem issuing.pem leaf.pem
// "ocsp": OCSP only (ocsp.enable=true, CRL distribution points not followed); "crldp": CRLs
// only, fetched from each certificate's CRL distribution point. Prints VALID, or INVALID with
// the validator's reason, and exits 0 or 1.
import java.io.FileInputStream;
import java.io.InputStream;
import java.security.Security;
import java.security.cert.CertPath;
import java.security.cert.CertPathValidator;
import java.security.cert.CertPathValidatorException;
import java.security.cert.CertificateFactory;
import java.security.cert.PKIXParameters;
import java.security.cert.TrustAnchor;
import java.security.cert.X509Certificate;
import java.util.List;
import java.util.Set;

public class PkixCheck {
    static X509Certificate load(CertificateFactory factory, String path) throws Exception {
        try (InputStream in = new FileInputStream(path)) {
            return (X509Certificate) factory.generateCertificate(in);
        }
    }

    public static void main(String[] args) throws Exception {
        boolean ocsp = args[0].equals("ocsp");
        Security.setProperty("ocsp.enable", ocsp ? "true" : "false");
        System.setProperty("com.sun.security.enableCRLDP", ocsp ? "false" : "true");
        CertificateFactory factory = CertificateFactory.getInstance("X.509");
        X509Certificate root = load(factory, args[1]);
        CertPath path = factory.generateCertPath(List.of(load(factory, args[3]), load(factory, args[2])));
        PKIXParameters parameters = new PKIXParameters(Set.of(new TrustAnchor(root, null)));
        parameters.setRevocationEnabled(true);
        try {
            CertPathValidator.getInstance("PKIX").validate(path, parameters);
            System.out.println("VALID");
        } catch (CertPathValidatorException e) {
            System.out.println("INVALID " + e.getReason() + " at " + e.getIndex() + ": " + e.getMessage());
            System.exit(1);
        }
    }
}
